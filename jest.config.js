/** @type {import('jest').Config} */
module.exports = {
  moduleFileExtensions: ['js', 'json', 'ts'],
  rootDir: '.',
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test', '<rootDir>/scripts'],
  testRegex: '.*\\.(spec|e2e-spec)\\.ts$',
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testEnvironment: 'node',
  moduleNameMapper: {
    '^@engine/hl7/testing$': '<rootDir>/libs/hl7/src/testing',
    '^@engine/store/testing$': '<rootDir>/libs/store/src/testing',
    '^@engine/(hl7|config|store|queue|mpi|routing)$': '<rootDir>/libs/$1/src',
    '^@engine/(gateway|worker|api)$': '<rootDir>/apps/$1/src',
  },
  testTimeout: 60000,
};
