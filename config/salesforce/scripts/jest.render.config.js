// Jest configuration for scripts/render-panel.render.js only (not part of `npm test`): it mounts bantPanel with
// the test fixtures and writes build/salesforce-panel.html for scripts/screenshot.sh.
const { jestConfig } = require('@salesforce/sfdx-lwc-jest/config');

module.exports = {
    ...jestConfig,
    rootDir: '..',
    testMatch: ['<rootDir>/scripts/render-panel.render.js'],
    modulePathIgnorePatterns: ['<rootDir>/build']
};
