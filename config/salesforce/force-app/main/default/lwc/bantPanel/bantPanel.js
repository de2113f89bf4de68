import { LightningElement, api, wire } from 'lwc';
import { getRecord, getFieldValue, getFieldDisplayValue } from 'lightning/uiRecordApi';
// lightning/uiGraphQLApi (v1), not lightning/graphql (v2): this query needs no v2 feature, v1 works at the
// project's API version (59.0) and in the mobile app's offline mode. Swapping the import is all v2 takes.
import { gql, graphql } from 'lightning/uiGraphQLApi';

import STATUS_FIELD from '@salesforce/schema/Opportunity.BANT_Status__c';
import MISSING_FIELD from '@salesforce/schema/Opportunity.BANT_Missing__c';
import SCORE_FIELD from '@salesforce/schema/Opportunity.BANT_Score__c';
import CHECKED_AT_FIELD from '@salesforce/schema/Opportunity.BANT_Checked_At__c';
import FLAGGED_SINCE_FIELD from '@salesforce/schema/Opportunity.BANT_Flagged_Since__c';
import REASONS_FIELD from '@salesforce/schema/Opportunity.BANT_Reasons__c';
import SNOOZE_UNTIL_FIELD from '@salesforce/schema/Opportunity.BANT_Snooze_Until__c';
import SNOOZE_REASON_FIELD from '@salesforce/schema/Opportunity.BANT_Snooze_Reason__c';

const FIELDS = [
    STATUS_FIELD,
    MISSING_FIELD,
    SCORE_FIELD,
    CHECKED_AT_FIELD,
    FLAGGED_SINCE_FIELD,
    REASONS_FIELD,
    SNOOZE_UNTIL_FIELD,
    SNOOZE_REASON_FIELD
];

/** Status API value -> label and SLDS badge classes (the badge always carries the label: colour is never
 * the only signal). Admins may relabel the picklist; the record's display value wins over these labels. */
const STATUSES = {
    qualified: { label: 'Qualified', badge: 'slds-badge slds-theme_success' },
    needs_qualification: { label: 'Needs qualification', badge: 'slds-badge slds-theme_warning' },
    poc_unqualified: { label: 'POC unqualified', badge: 'slds-badge slds-theme_error' },
    qualify_out: { label: 'Qualify out', badge: 'slds-badge slds-theme_error bant-badge_qualify-out' },
    not_evaluated: { label: 'Not evaluated', badge: 'slds-badge' },
    snoozed: { label: 'Snoozed', badge: 'slds-badge slds-badge_inverse' }
};
const UNQUALIFIED = new Set(['needs_qualification', 'poc_unqualified', 'qualify_out']);

const HINT_SEPARATOR = ' \u2014 ';
const SNOOZE_LINE = /^(Snoozed until |Snooze ignored:|Snooze ended on )/;

export const PERMISSION_MESSAGE =
    "You can't see this opportunity's BANT fields. Ask your Salesforce admin to assign you the " +
    'BANT Sync Rep permission set (BANT_Sync_Rep): it grants read access to the fields bant-sync writes.';

/**
 * Splits the reasons field written by bant-sync: one line per missing criterion, "<reason> — <hint>"
 * (split on the first " — "), and optionally one final line about the snooze.
 * @param {string} text the BANT_Reasons__c value
 * @returns {{criteria: {key: string, criterion: string, reason: string, hint: string}[], snoozeNote: string}}
 */
export function parseReasons(text) {
    const criteria = [];
    let snoozeNote = '';
    (text || '')
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter((line) => line)
        .forEach((line, index) => {
            if (SNOOZE_LINE.test(line)) {
                snoozeNote = line;
                return;
            }
            const cut = line.indexOf(HINT_SEPARATOR);
            const reason = cut < 0 ? line : line.slice(0, cut);
            const hint = cut < 0 ? '' : line.slice(cut + HINT_SEPARATOR.length);
            const colon = reason.indexOf(':');
            const criterion = colon < 0 ? reason : reason.slice(0, colon);
            criteria.push({ key: `${index}-${criterion}`, criterion, reason, hint });
        });
    return { criteria, snoozeNote };
}

function errorText(error) {
    if (!error) {
        return '';
    }
    const body = error.body;
    if (Array.isArray(body)) {
        return body.map((e) => e.message).join(' ');
    }
    if (body && typeof body.message === 'string') {
        return body.message;
    }
    return typeof error.message === 'string' ? error.message : '';
}

export default class BantPanel extends LightningElement {
    @api recordId;

    record;
    recordError;
    task;
    taskError;
    taskLoaded = false;

    @wire(getRecord, { recordId: '$recordId', fields: FIELDS })
    wiredRecord({ data, error }) {
        if (data) {
            this.record = data;
            this.recordError = undefined;
        } else if (error) {
            this.record = undefined;
            this.recordError = error;
        }
    }

    get taskVariables() {
        return { recordId: this.recordId };
    }

    @wire(graphql, {
        query: gql`
            query bantOpenTask($recordId: ID) {
                uiapi {
                    query {
                        Task(
                            where: {
                                and: [
                                    { WhatId: { eq: $recordId } }
                                    { BANT_Sync_Key__c: { ne: null } }
                                    { IsClosed: { eq: false } }
                                ]
                            }
                            orderBy: { ActivityDate: { order: ASC, nulls: LAST } }
                            first: 1
                        ) {
                            edges {
                                node {
                                    Id
                                    Subject {
                                        value
                                    }
                                    ActivityDate {
                                        value
                                        displayValue
                                    }
                                }
                            }
                        }
                    }
                }
            }
        `,
        variables: '$taskVariables',
        operationName: 'bantOpenTask'
    })
    wiredTask({ data, errors }) {
        if (errors && errors.length) {
            this.task = undefined;
            this.taskError = errors.map((e) => e.message).join(' ');
            this.taskLoaded = true;
        } else if (data) {
            const edges = data.uiapi.query.Task.edges;
            const node = edges.length ? edges[0].node : undefined;
            this.task = node
                ? {
                      id: node.Id,
                      subject: node.Subject ? node.Subject.value : '',
                      due: node.ActivityDate ? node.ActivityDate.displayValue || node.ActivityDate.value : null
                  }
                : undefined;
            this.taskError = undefined;
            this.taskLoaded = true;
        }
    }

    // ----- state

    get isLoading() {
        return !this.record && !this.recordError;
    }

    get hasError() {
        return Boolean(this.recordError);
    }

    get errorMessage() {
        return PERMISSION_MESSAGE;
    }

    get errorDetail() {
        return errorText(this.recordError);
    }

    get isReady() {
        return Boolean(this.record);
    }

    value(field) {
        const v = getFieldValue(this.record, field);
        return v === undefined ? null : v;
    }

    display(field) {
        const shown = getFieldDisplayValue(this.record, field);
        return shown === null || shown === undefined || shown === '' ? this.value(field) : shown;
    }

    get status() {
        return this.value(STATUS_FIELD);
    }

    get neverChecked() {
        return !this.status && !this.value(CHECKED_AT_FIELD);
    }

    get isChecked() {
        return !this.neverChecked;
    }

    get isSnoozed() {
        return this.status === 'snoozed';
    }

    // ----- badge, score, dates

    get statusLabel() {
        const shown = getFieldDisplayValue(this.record, STATUS_FIELD);
        if (shown) {
            return shown;
        }
        const known = STATUSES[this.status];
        return known ? known.label : this.status || 'Not checked';
    }

    get badgeClass() {
        const known = STATUSES[this.status];
        return known ? known.badge : 'slds-badge';
    }

    get score() {
        const score = this.value(SCORE_FIELD);
        return score === null ? '—' : `${score} / 100`;
    }

    get checkedAt() {
        return this.display(CHECKED_AT_FIELD) || '—';
    }

    get flaggedSince() {
        return this.display(FLAGGED_SINCE_FIELD);
    }

    get showFlaggedSince() {
        return Boolean(this.flaggedSince) && (UNQUALIFIED.has(this.status) || this.isSnoozed);
    }

    // ----- missing criteria

    get parsed() {
        return parseReasons(this.value(REASONS_FIELD));
    }

    get missingCriteria() {
        const { criteria } = this.parsed;
        if (criteria.length) {
            return criteria;
        }
        // No reasons written (an older bant-sync, or the field was cleared): the missing list still names them.
        const missing = this.value(MISSING_FIELD) || '';
        return missing
            .split(';')
            .map((name) => name.trim())
            .filter((name) => name)
            .map((name, index) => ({ key: `${index}-${name}`, criterion: name, reason: `${name}: missing`, hint: '' }));
    }

    get hasMissing() {
        return this.missingCriteria.length > 0;
    }

    get missingHeading() {
        const n = this.missingCriteria.length;
        return n === 1 ? '1 criterion missing' : `${n} criteria missing`;
    }

    // ----- snooze

    get snoozeUntil() {
        return this.display(SNOOZE_UNTIL_FIELD);
    }

    get snoozeReason() {
        return this.value(SNOOZE_REASON_FIELD);
    }

    get snoozeText() {
        if (this.isSnoozed) {
            const until = this.snoozeUntil ? `Snoozed until ${this.snoozeUntil}` : 'Snoozed';
            return this.snoozeReason ? `${until} — ${this.snoozeReason}` : until;
        }
        const note = this.parsed.snoozeNote;
        if (note) {
            return note;
        }
        if (this.snoozeUntil) {
            const asked = `Snooze requested until ${this.snoozeUntil}`;
            const why = this.snoozeReason ? ` — ${this.snoozeReason}` : '';
            return `${asked}${why}. bant-sync applies it at its next check.`;
        }
        return '';
    }

    get hasSnooze() {
        return Boolean(this.snoozeText);
    }

    get snoozeClass() {
        return this.isSnoozed
            ? 'slds-box slds-box_x-small slds-theme_shade bant-snooze bant-snooze_active'
            : 'slds-box slds-box_x-small bant-snooze';
    }

    // ----- follow-up task

    get hasTask() {
        return Boolean(this.task);
    }

    get taskDue() {
        return this.task && this.task.due ? this.task.due : 'no due date';
    }

    get taskUrl() {
        return this.task ? `/lightning/r/Task/${this.task.id}/view` : '';
    }

    get hasTaskError() {
        return Boolean(this.taskError);
    }

    get noTaskText() {
        if (!this.taskLoaded) {
            return 'Looking for the follow-up task…';
        }
        if (this.isSnoozed) {
            return 'None open: the follow-up task is completed while the deal is snoozed.';
        }
        return 'No open follow-up task.';
    }
}
