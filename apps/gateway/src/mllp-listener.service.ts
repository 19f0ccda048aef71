import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { encodeMllp, MllpDecoder } from '@engine/hl7';
import { ENGINE_CONFIG, type EngineConfig, type FeedConfig } from '@engine/config';
import { IntakeService } from './intake.service';
import { gatewayMetrics } from './metrics';

interface Listener {
  feed: FeedConfig;
  server: net.Server;
  sockets: Set<net.Socket>;
}

/**
 * One MLLP listener (TCP or TLS) per configured feed. Each connection has its own decoder;
 * frames are accepted concurrently (so they can share a group commit) and their ACKs are
 * written back in the order the frames arrived.
 */
@Injectable()
export class MllpListenerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(MllpListenerService.name);
  private readonly listeners: Listener[] = [];

  constructor(
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
    private readonly intake: IntakeService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    for (const feed of this.config.feeds) {
      this.listeners.push(await this.listen(feed));
    }
  }

  /** Bound address of a feed's listener (port 0 in config means an ephemeral port). */
  address(feedId: string): net.AddressInfo {
    const l = this.listeners.find((x) => x.feed.id === feedId);
    const addr = l?.server.address();
    if (!addr || typeof addr === 'string') {
      throw new Error(`feed ${feedId} is not listening`);
    }
    return addr;
  }

  private listen(feed: FeedConfig): Promise<Listener> {
    const sockets = new Set<net.Socket>();
    const onSocket = (socket: net.Socket): void => this.onConnection(feed, socket, sockets);
    const server = feed.tls
      ? tls.createServer(
          {
            cert: readFileSync(feed.tls.cert),
            key: readFileSync(feed.tls.key),
            ca: feed.tls.ca ? readFileSync(feed.tls.ca) : undefined,
            requestCert: feed.tls.requireClientCert,
            rejectUnauthorized: feed.tls.requireClientCert,
          },
          onSocket,
        )
      : net.createServer(onSocket);
    server.maxConnections = feed.maxConnections;
    server.on('drop', () =>
      this.logger.warn(`feed ${feed.id}: connection refused, ${feed.maxConnections} already open`),
    );
    if (server instanceof tls.Server) {
      server.on('tlsClientError', (err) =>
        this.logger.warn(`feed ${feed.id}: TLS handshake failed: ${err.message}`),
      );
    }
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(feed.port, feed.host, () => {
        server.off('error', reject);
        server.on('error', (err: Error) => this.logger.error(`feed ${feed.id}: ${err.message}`));
        const a = server.address() as net.AddressInfo;
        this.logger.log(
          `feed ${feed.id} listening on ${a.address}:${a.port}${feed.tls ? ' (TLS)' : ''}`,
        );
        resolve({ feed, server, sockets });
      });
    });
  }

  private onConnection(feed: FeedConfig, socket: net.Socket, sockets: Set<net.Socket>): void {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    sockets.add(socket);
    gatewayMetrics.connections.inc({ feed: feed.id });
    socket.setNoDelay(true);
    if (feed.idleTimeoutSeconds > 0) {
      socket.setTimeout(feed.idleTimeoutSeconds * 1000, () => {
        this.logger.log(`feed ${feed.id}: closing idle connection from ${remote}`);
        socket.end();
      });
    }
    const decoder = new MllpDecoder({
      maxFrameBytes: feed.maxMessageBytes,
      maxNoiseBytes: feed.maxNoiseBytes,
    });
    // ACKs leave in frame order: each frame's ACK waits for the previous one.
    let ackChain: Promise<void> = Promise.resolve();
    const send = (ack: Promise<Buffer | null>, started: number): void => {
      ackChain = ackChain
        .then(() => ack)
        .then((bytes) => {
          if (bytes && !socket.destroyed) {
            socket.write(encodeMllp(bytes));
          }
          gatewayMetrics.ackLatency.observe(
            { feed: feed.id },
            (performance.now() - started) / 1000,
          );
        })
        .catch((err: unknown) =>
          this.logger.error(`feed ${feed.id}: ACK failed: ${(err as Error).message}`),
        );
    };

    socket.on('data', (chunk: Buffer) => {
      let events;
      try {
        events = decoder.push(chunk);
      } catch (err) {
        this.logger.error(
          `feed ${feed.id}: decoder failure from ${remote}: ${(err as Error).message}`,
        );
        socket.destroy();
        return;
      }
      for (const ev of events) {
        const started = performance.now();
        const ctx = { feed, remoteAddress: remote, receivedAt: new Date() };
        switch (ev.type) {
          case 'frame':
            send(this.intake.accept(ev.payload, ctx), started);
            break;
          case 'oversize':
            send(this.intake.acceptOversize(ev.head ?? Buffer.alloc(0), ev.bytes, ctx), started);
            break;
          case 'noise':
            gatewayMetrics.noiseBytes.inc({ feed: feed.id }, ev.bytes);
            this.logger.warn(
              `feed ${feed.id}: discarded ${ev.bytes} byte(s) outside MLLP frames from ${remote}`,
            );
            break;
        }
      }
      if (decoder.pendingNoiseBytes > feed.maxNoiseBytes) {
        gatewayMetrics.closedNotHl7.inc({ feed: feed.id });
        this.logger.warn(
          `feed ${feed.id}: closing connection from ${remote}: more than ${feed.maxNoiseBytes} bytes that are not MLLP-framed HL7`,
        );
        socket.destroy();
      }
    });
    socket.on('error', (err) =>
      this.logger.warn(`feed ${feed.id}: connection ${remote}: ${err.message}`),
    );
    socket.on('close', () => {
      sockets.delete(socket);
      gatewayMetrics.connections.dec({ feed: feed.id });
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(
      this.listeners.map(
        (l) =>
          new Promise<void>((resolve) => {
            l.server.close(() => resolve());
            // Give in-flight ACKs a moment, then close the connections.
            setTimeout(() => {
              for (const s of l.sockets) {
                s.destroy();
              }
            }, 200).unref();
          }),
      ),
    );
  }
}
