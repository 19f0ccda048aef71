/** @type {import('jest').Config} */
module.exports = {
  moduleFileExtensions: ['js', 'json', 'ts'],
  rootDir: '.',
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test'],
  testRegex: '.*\\.(spec|e2e-spec)\\.ts$',
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true }] },
  testEnvironment: 'node',
  moduleNameMapper: {
    '^@engine/(hl7|config|store|queue)$': '<rootDir>/libs/$1/src',
    '^@engine/(gateway|worker|api)$': '<rootDir>/apps/$1/src',
  },
  testTimeout: 60000,
};
