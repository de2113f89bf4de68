/**
 * Every slds-* class bantPanel uses exists in the Salesforce Lightning Design System stylesheet (a typo would
 * silently lose the badge colour), and every other class is defined in bantPanel.css.
 */
const fs = require('fs');
const path = require('path');

const BUNDLE = path.resolve(__dirname, '..');
const PROJECT = path.resolve(BUNDLE, '../../../../..'); // config/salesforce
// Read by path: Jest maps `require`d .css files to a stub.
const SLDS_CSS = fs.readFileSync(
    path.join(PROJECT, 'node_modules/@salesforce-ux/design-system/assets/styles/salesforce-lightning-design-system.css'),
    'utf8'
);
const PANEL_CSS = fs.readFileSync(path.join(BUNDLE, 'bantPanel.css'), 'utf8');

function classesUsed() {
    const html = fs.readFileSync(path.join(BUNDLE, 'bantPanel.html'), 'utf8');
    const js = fs.readFileSync(path.join(BUNDLE, 'bantPanel.js'), 'utf8');
    const fromHtml = [...html.matchAll(/class="([^"{]+)"/g)].flatMap((m) => m[1].split(/\s+/));
    const fromJs = [...js.matchAll(/'((?:slds|bant)-[^']*)'/g)].flatMap((m) => m[1].split(/\s+/));
    return [...new Set([...fromHtml, ...fromJs].filter((c) => c))];
}

const defined = (css, name) => new RegExp(`\\.${name.replace(/[-_]/g, (c) => `\\${c}`)}(?![\\w-])`).test(css);

describe('bantPanel CSS classes', () => {
    const used = classesUsed();

    it('finds the classes it checks', () => {
        expect(used).toEqual(expect.arrayContaining(['slds-badge', 'slds-theme_error', 'bant-badge_qualify-out']));
    });

    it.each(used.filter((c) => c.startsWith('slds-')))('%s is an SLDS class', (name) => {
        expect(defined(SLDS_CSS, name)).toBe(true);
    });

    it.each(used.filter((c) => !c.startsWith('slds-')))('%s is styled by bantPanel.css or is a hook', (name) => {
        const hooks = ['bant-panel', 'bant-error', 'bant-error__message', 'bant-error__detail', 'bant-never-checked',
            'bant-missing', 'bant-reason', 'bant-task', 'bant-snooze_active'];
        expect(defined(PANEL_CSS, name) || hooks.includes(name)).toBe(true);
    });
});
