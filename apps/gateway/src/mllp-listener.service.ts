import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
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
  /** Open connections and the promise of their last ACK. */
  sockets: Map<net.Socket, () => Promise<void>>;
}

/**
 * Frames of one connection accepted but not yet ACKed, beyond which the connection stops being
 * read until its ACKs catch up (a sender that streams without reading ACKs cannot exhaust memory).
 */
const MAX_UNACKED_FRAMES = 256;

/** How long shutdown waits for commits and ACKs in flight before closing connections. */
const SHUTDOWN_GRACE_MS = 5000;

/**
 * One MLLP listener (TCP or TLS) per configured feed. Each connection has its own decoder;
 * frames are accepted concurrently (so they can share a group commit) and their ACKs are
 * written back in the order the frames arrived.
 */
@Injectable()
export class MllpListenerService
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly logger = new Logger(MllpListenerService.name);
  private readonly listeners: Listener[] = [];
  private closing = false;

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
    const sockets = new Map<net.Socket, () => Promise<void>>();
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

  private onConnection(
    feed: FeedConfig,
    socket: net.Socket,
    sockets: Map<net.Socket, () => Promise<void>>,
  ): void {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
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
    let unacked = 0;
    let throttled = false;
    sockets.set(socket, () => ackChain);
    const send = (accepted: Promise<Buffer | null>, started: number): void => {
      unacked++;
      if (unacked >= MAX_UNACKED_FRAMES && !throttled) {
        throttled = true;
        socket.pause();
      }
      // Settled at once into a value, so a rejection can never go unhandled while it waits
      // for the ACKs before it.
      const ack = accepted.catch((err: unknown) => {
        this.logger.error(`feed ${feed.id}: frame handling failed: ${(err as Error).message}`);
        return null;
      });
      ackChain = ackChain
        .then(() => ack)
        .then((bytes) => {
          if (bytes && !socket.destroyed) {
            socket.write(encodeMllp(bytes));
          }
          unacked--;
          if (
            throttled &&
            unacked <= MAX_UNACKED_FRAMES / 2 &&
            !socket.destroyed &&
            !this.closing
          ) {
            throttled = false;
            socket.resume();
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

  /**
   * Runs before any module closes the database or Redis: stop accepting connections and
   * frames, let the commits and ACKs in flight finish (up to SHUTDOWN_GRACE_MS), then close.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.closing = true;
    for (const l of this.listeners) {
      l.server.close();
      for (const socket of l.sockets.keys()) {
        socket.pause();
      }
    }
    const settled = Promise.all(
      this.listeners.flatMap((l) => [...l.sockets.values()].map((last) => last())),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      settled,
      new Promise((resolve) => {
        timer = setTimeout(resolve, SHUTDOWN_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    for (const l of this.listeners) {
      for (const socket of l.sockets.keys()) {
        socket.end();
      }
    }
  }

  onApplicationShutdown(): void {
    for (const l of this.listeners) {
      for (const socket of l.sockets.keys()) {
        socket.destroy();
      }
    }
  }
}
