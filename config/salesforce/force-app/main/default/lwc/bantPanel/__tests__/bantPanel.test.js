import { createElement } from 'lwc';
import BantPanel, { parseReasons, PERMISSION_MESSAGE } from 'c/bantPanel';
import { getRecord } from 'lightning/uiRecordApi';
import { graphql } from 'lightning/uiGraphQLApi';

const unqualifiedPoc = require('./data/unqualifiedPoc.json');
const snoozed = require('./data/snoozed.json');
const neverChecked = require('./data/neverChecked.json');
const openTask = require('./data/openTask.json');
const noTask = require('./data/noTask.json');

const flush = () => Promise.resolve();

function mount(recordId = '006000000000001AAA') {
    const element = createElement('c-bant-panel', { is: BantPanel });
    element.recordId = recordId;
    document.body.appendChild(element);
    return element;
}

/** A copy of the POC fixture with other field values (value and display value). */
function withFields(fields) {
    const record = JSON.parse(JSON.stringify(unqualifiedPoc));
    Object.entries(fields).forEach(([name, [value, displayValue]]) => {
        record.fields[name] = { value, displayValue: displayValue === undefined ? null : displayValue };
    });
    return record;
}

const $ = (element, id) => element.shadowRoot.querySelector(`[data-id="${id}"]`);
const $$ = (element, id) => Array.from(element.shadowRoot.querySelectorAll(`[data-id="${id}"]`));

describe('c-bant-panel', () => {
    afterEach(() => {
        while (document.body.firstChild) {
            document.body.removeChild(document.body.firstChild);
        }
        jest.clearAllMocks();
    });

    it('asks Lightning Data Service for every BANT field it shows, and for the open task of this record', async () => {
        mount();
        await flush();
        const fields = getRecord.getLastConfig().fields.map((f) => `${f.objectApiName}.${f.fieldApiName}`);
        expect(fields.sort()).toEqual(
            [
                'BANT_Checked_At__c',
                'BANT_Flagged_Since__c',
                'BANT_Missing__c',
                'BANT_Reasons__c',
                'BANT_Score__c',
                'BANT_Snooze_Reason__c',
                'BANT_Snooze_Until__c',
                'BANT_Status__c'
            ].map((f) => `Opportunity.${f}`)
        );
        expect(graphql.getLastConfig().variables).toEqual({ recordId: '006000000000001AAA' });
    });

    it('shows a spinner while the record loads', () => {
        const element = mount();
        expect(element.shadowRoot.querySelector('lightning-spinner')).not.toBeNull();
        expect(element.shadowRoot.querySelector('lightning-spinner').alternativeText).toBe('Loading BANT qualification');
        expect($(element, 'status-badge')).toBeNull();
    });

    it('names the permission set when the fields cannot be read', async () => {
        const element = mount();
        getRecord.error({ message: "No such column 'BANT_Status__c' on entity 'Opportunity'" }, 400, 'Bad Request');
        await flush();
        const alert = element.shadowRoot.querySelector('[role="alert"]');
        expect(alert).not.toBeNull();
        expect(alert.textContent).toContain(PERMISSION_MESSAGE);
        expect(alert.textContent).toContain('BANT_Sync_Rep');
        expect(alert.textContent).toContain("No such column 'BANT_Status__c'");
        expect(element.shadowRoot.querySelector('lightning-spinner')).toBeNull();
        expect($(element, 'status-badge')).toBeNull();
    });

    it('says a deal bant-sync never checked has not been checked yet', async () => {
        const element = mount();
        getRecord.emit(neverChecked);
        await flush();
        const note = element.shadowRoot.querySelector('.bant-never-checked');
        expect(note.textContent).toContain('has not checked this deal yet');
        expect($(element, 'status-badge')).toBeNull();
        expect($$(element, 'missing-item')).toHaveLength(0);
    });

    describe.each([
        ['qualified', 'Qualified', ['slds-badge', 'slds-theme_success']],
        ['needs_qualification', 'Needs qualification', ['slds-badge', 'slds-theme_warning']],
        ['poc_unqualified', 'POC unqualified', ['slds-badge', 'slds-theme_error']],
        ['qualify_out', 'Qualify out', ['slds-badge', 'slds-theme_error', 'bant-badge_qualify-out']],
        ['not_evaluated', 'Not evaluated', ['slds-badge']],
        ['snoozed', 'Snoozed', ['slds-badge', 'slds-badge_inverse']]
    ])('status %s', (status, label, classes) => {
        it(`shows the badge "${label}" in its colour`, async () => {
            const element = mount();
            getRecord.emit(withFields({ BANT_Status__c: [status, null] }));
            await flush();
            const badge = $(element, 'status-badge');
            expect(badge.textContent).toBe(label);
            expect(Array.from(badge.classList).sort()).toEqual([...classes].sort());
        });
    });

    it("uses the admin's picklist label over the built-in one", async () => {
        const element = mount();
        getRecord.emit(withFields({ BANT_Status__c: ['poc_unqualified', 'POC not qualified'] }));
        await flush();
        expect($(element, 'status-badge').textContent).toBe('POC not qualified');
        expect($(element, 'status-badge').classList).toContain('slds-theme_error');
    });

    it('only the qualify-out badge is the darker red', async () => {
        const element = mount();
        getRecord.emit(withFields({ BANT_Status__c: ['poc_unqualified', null] }));
        await flush();
        expect($(element, 'status-badge').classList).not.toContain('bant-badge_qualify-out');
    });

    it('lists each missing criterion with its reason and the question to ask, the score and the dates', async () => {
        const element = mount();
        getRecord.emit(unqualifiedPoc);
        await flush();
        expect($(element, 'score').textContent).toBe('50 / 100');
        expect($(element, 'checked-at').textContent).toBe('30/11/2026, 07:00');
        expect($(element, 'flagged-since').textContent).toBe('12/11/2026');
        expect($(element, 'missing-heading').textContent.trim()).toBe('2 criteria missing');
        const items = $$(element, 'missing-item');
        expect(items).toHaveLength(2);
        expect(items[0].querySelector('[data-id="reason"]').textContent).toBe('Budget: missing');
        expect(items[0].querySelector('[data-id="hint"]').textContent).toBe(
            'What budget is set aside for this, roughly how much, and who approves spending it?'
        );
        expect(items[1].querySelector('[data-id="reason"]').textContent).toBe('Need: shorter than 15 characters');
        expect(items[1].querySelector('[data-id="hint"]').textContent).toBe(
            'What problem must this solve, and what does it cost you while it stays unsolved?'
        );
    });

    it('shows the open follow-up task with its due date', async () => {
        const element = mount();
        getRecord.emit(unqualifiedPoc);
        graphql.emit(openTask);
        await flush();
        expect($(element, 'task-subject').textContent).toBe('BANT: qualify Budget and Need before the POC starts');
        expect($(element, 'task-subject').getAttribute('href')).toBe('/lightning/r/Task/00T000000000001AAA/view');
        expect($(element, 'task-due').textContent).toBe('03/12/2026');
        expect($(element, 'no-task')).toBeNull();
    });

    it('says so when no follow-up task is open', async () => {
        const element = mount();
        getRecord.emit(unqualifiedPoc);
        graphql.emit(noTask);
        await flush();
        expect($(element, 'task')).toBeNull();
        expect($(element, 'no-task').textContent).toBe('No open follow-up task.');
    });

    it('reports a task query error without hiding the verdict', async () => {
        const element = mount();
        getRecord.emit(unqualifiedPoc);
        graphql.emitErrors([{ message: 'No such column BANT_Sync_Key__c on Task' }]);
        await flush();
        expect($(element, 'task-error').textContent).toContain('No such column BANT_Sync_Key__c on Task');
        expect($(element, 'status-badge').textContent).toBe('POC unqualified');
    });

    it('shows a snooze in force with its date and reason, still lists what is missing, and no open task', async () => {
        const element = mount();
        getRecord.emit(snoozed);
        graphql.emit(noTask);
        await flush();
        expect($(element, 'status-badge').textContent).toBe('Snoozed');
        expect($(element, 'snooze-text').textContent).toBe(
            "Snoozed until 20/12/2026 — Customer's budget cycle closes mid-December"
        );
        expect($(element, 'snooze').classList).toContain('bant-snooze_active');
        expect($$(element, 'missing-item')).toHaveLength(1);
        expect($(element, 'reason').textContent).toBe('Budget: missing');
        expect($(element, 'no-task').textContent).toContain('completed while the deal is snoozed');
        expect($(element, 'flagged-since').textContent).toBe('02/11/2026');
    });

    it("shows why a snooze was ignored, from the reasons field's last line", async () => {
        const element = mount();
        getRecord.emit(unqualifiedPoc);
        await flush();
        expect($(element, 'status-badge').textContent).toBe('POC unqualified');
        expect($(element, 'snooze-text').textContent).toBe(
            'Snooze ignored: POCs cannot be snoozed — every criterion is required before a POC goes ahead'
        );
        expect($(element, 'snooze').classList).not.toContain('bant-snooze_active');
        // The snooze line is not a criterion, though it carries " — " too.
        expect($$(element, 'missing-item')).toHaveLength(2);
    });

    it('shows an ended snooze', async () => {
        const element = mount();
        getRecord.emit(
            withFields({
                BANT_Status__c: ['needs_qualification', null],
                BANT_Reasons__c: ['Budget: missing — What budget?\nSnooze ended on 2026-12-20', null]
            })
        );
        await flush();
        expect($(element, 'snooze-text').textContent).toBe('Snooze ended on 2026-12-20');
    });

    it('says a snooze the rep just set is applied at the next check', async () => {
        const element = mount();
        getRecord.emit(
            withFields({
                BANT_Status__c: ['needs_qualification', null],
                BANT_Reasons__c: ['Budget: missing — What budget?', null],
                BANT_Snooze_Until__c: ['2026-12-20', '20/12/2026'],
                BANT_Snooze_Reason__c: ['Budget cycle closes in December', null]
            })
        );
        await flush();
        expect($(element, 'snooze-text').textContent).toBe(
            'Snooze requested until 20/12/2026 — Budget cycle closes in December. bant-sync applies it at its next check.'
        );
    });

    it('shows a qualified deal without missing criteria, unqualified-since date or snooze', async () => {
        const element = mount();
        getRecord.emit(
            withFields({
                BANT_Status__c: ['qualified', null],
                BANT_Missing__c: [null],
                BANT_Score__c: [100],
                BANT_Reasons__c: [''],
                BANT_Flagged_Since__c: [null],
                BANT_Snooze_Until__c: [null],
                BANT_Snooze_Reason__c: [null]
            })
        );
        graphql.emit(noTask);
        await flush();
        expect($(element, 'status-badge').textContent).toBe('Qualified');
        expect($(element, 'score').textContent).toBe('100 / 100');
        expect($$(element, 'missing-item')).toHaveLength(0);
        expect($(element, 'flagged-since')).toBeNull();
        expect($(element, 'snooze')).toBeNull();
    });

    it('falls back to the missing list when no reasons were written', async () => {
        const element = mount();
        getRecord.emit(withFields({ BANT_Reasons__c: [null], BANT_Missing__c: ['Budget;Timing'] }));
        await flush();
        const reasons = $$(element, 'reason').map((r) => r.textContent);
        expect(reasons).toEqual(['Budget: missing', 'Timing: missing']);
        expect($$(element, 'hint')).toHaveLength(0);
    });

    it('is accessible: the card is labelled and the badge is text, not colour alone', async () => {
        const element = mount();
        getRecord.emit(unqualifiedPoc);
        await flush();
        const card = element.shadowRoot.querySelector('article');
        const title = element.shadowRoot.querySelector('h2');
        expect(title.textContent).toBe('BANT qualification');
        expect(card.getAttribute('aria-labelledby')).toBe(title.id);
        const badge = $(element, 'status-badge');
        const statusLabel = element.shadowRoot.querySelector('.slds-text-title');
        expect(statusLabel.textContent).toBe('Status');
        expect(badge.getAttribute('aria-describedby')).toBe(statusLabel.id);
        const list = element.shadowRoot.querySelector('ul.bant-missing');
        expect(list.getAttribute('aria-labelledby')).toBe($(element, 'missing-heading').id);
        expect(badge.textContent).toBe('POC unqualified');
    });
});

describe('parseReasons', () => {
    it('splits on the first em dash only, and keeps the criterion label', () => {
        const { criteria, snoozeNote } = parseReasons(
            'Authority: no economic buyer named — Who signs — and who can veto — this deal?'
        );
        expect(snoozeNote).toBe('');
        expect(criteria).toEqual([
            {
                key: '0-Authority',
                criterion: 'Authority',
                reason: 'Authority: no economic buyer named',
                hint: 'Who signs — and who can veto — this deal?'
            }
        ]);
    });

    it('takes a line without a hint whole, skips blank lines and reads CRLF', () => {
        const { criteria } = parseReasons('Timing: missing\r\n\r\nNeed: missing — Why now?');
        expect(criteria.map((c) => [c.criterion, c.reason, c.hint])).toEqual([
            ['Timing', 'Timing: missing', ''],
            ['Need', 'Need: missing', 'Why now?']
        ]);
    });

    it('separates the snooze line from the criteria', () => {
        const { criteria, snoozeNote } = parseReasons('Budget: missing — How much?\nSnoozed until 2026-12-20: budget cycle');
        expect(criteria).toHaveLength(1);
        expect(snoozeNote).toBe('Snoozed until 2026-12-20: budget cycle');
    });

    it('is empty for an empty field', () => {
        expect(parseReasons(null)).toEqual({ criteria: [], snoozeNote: '' });
        expect(parseReasons('')).toEqual({ criteria: [], snoozeNote: '' });
    });
});
