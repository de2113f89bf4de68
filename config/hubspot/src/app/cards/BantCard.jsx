import React from 'react';
import {
  Alert,
  DescriptionList,
  DescriptionListItem,
  Divider,
  ErrorState,
  Flex,
  Heading,
  List,
  LoadingSpinner,
  Tag,
  Text,
  hubspot,
} from '@hubspot/ui-extensions';
import { useAssociations, useCrmProperties } from '@hubspot/ui-extensions/crm';
import {
  DEAL_PROPERTIES,
  TASK_OBJECT_TYPE,
  TASK_PROPERTIES,
  absentProperties,
  cardModel,
  readErrorMessage,
  setupMessage,
} from './bant.js';

// Entry point of the "BANT qualification" deal-record card (see bant-card-hsmeta.json).
hubspot.extend(() => <BantCard />);

const SNOOZE_ALERT = {
  active: { title: 'Snoozed', variant: 'info' },
  ignored: { title: 'Snooze ignored', variant: 'warning' },
  ended: { title: 'Snooze ended', variant: 'info' },
  pending: { title: 'Snooze not checked yet', variant: 'info' },
};

function SnoozeAlert({ snooze }) {
  if (!snooze) {
    return null;
  }
  const { title, variant } = SNOOZE_ALERT[snooze.kind];
  return (
    <Alert title={title} variant={variant} testId="bant-snooze">
      {snooze.text}
    </Alert>
  );
}

function MissingList({ missing }) {
  if (missing.length === 0) {
    return null;
  }
  return (
    <Flex direction="column" gap="extra-small">
      <Heading>Missing</Heading>
      <List variant="unordered-styled" testId="bant-missing">
        {missing.map((item) => (
          <Flex key={item.label} direction="column" gap="flush">
            <Text format={{ fontWeight: 'demibold' }}>{item.reason}</Text>
            {item.hint ? <Text variant="microcopy">{item.hint}</Text> : null}
          </Flex>
        ))}
      </List>
    </Flex>
  );
}

function TaskValue({ model, tasks }) {
  if (tasks.isLoading) {
    return <LoadingSpinner label="Looking for the follow-up task" showLabel size="xs" />;
  }
  if (tasks.error) {
    return (
      <Text testId="bant-task-error">{readErrorMessage('tasks', tasks.error)}</Text>
    );
  }
  if (model.task) {
    return (
      <Text testId="bant-task">
        {model.task.subject}
        {model.task.due ? ` (due ${model.task.due})` : ''}
      </Text>
    );
  }
  if (model.status === 'snoozed') {
    return <Text testId="bant-task">None: the task is completed while the deal is snoozed</Text>;
  }
  const more = tasks.pagination?.hasNextPage ? ' among the first 100 tasks' : '';
  return <Text testId="bant-task">No open follow-up task{more}</Text>;
}

/** The card body for one deal; reads the deal's properties and its associated tasks itself. */
export function BantCard() {
  const deal = useCrmProperties(DEAL_PROPERTIES);
  const tasks = useAssociations({
    toObjectType: TASK_OBJECT_TYPE,
    properties: TASK_PROPERTIES,
    pageLength: 100,
  });

  if (deal.isLoading) {
    return <LoadingSpinner label="Loading BANT qualification" showLabel layout="centered" />;
  }
  if (deal.error) {
    return (
      <ErrorState title="BANT qualification could not be loaded" type="lock">
        <Text testId="bant-error">{readErrorMessage('deal', deal.error)}</Text>
      </ErrorState>
    );
  }
  const absent = absentProperties(deal.properties);
  if (absent.length > 0) {
    return (
      <ErrorState title="bant-sync is not set up in this account" type="support">
        <Text testId="bant-error">{setupMessage(absent)}</Text>
      </ErrorState>
    );
  }

  const model = cardModel(deal.properties, tasks.results);
  if (model.state === 'never-checked') {
    return (
      <Flex direction="column" gap="small">
        <Tag variant="default" testId="bant-status">Not checked yet</Tag>
        <Text testId="bant-never-checked">
          bant-sync has not checked this deal yet. It checks open deals at its next sync run; if every deal
          shows this, check that bant-sync runs against this HubSpot account.
        </Text>
        <SnoozeAlert snooze={model.snooze} />
      </Flex>
    );
  }

  return (
    <Flex direction="column" gap="small">
      <Flex direction="row" gap="small" align="center">
        <Tag variant={model.badge.variant} testId="bant-status">{model.badge.label}</Tag>
        {model.score ? <Text testId="bant-score">Score {model.score}</Text> : null}
      </Flex>
      <SnoozeAlert snooze={model.snooze} />
      <MissingList missing={model.missing} />
      {model.unqualified || model.missing.length > 0 ? null : (
        <Text testId="bant-all-met">
          {model.status === 'qualified' ? 'Every criterion is met.' : 'Nothing is required of this deal at its stage.'}
        </Text>
      )}
      <Divider />
      <DescriptionList direction="row">
        {model.unqualified ? (
          <DescriptionListItem label="Follow-up task">
            <TaskValue model={model} tasks={tasks} />
          </DescriptionListItem>
        ) : null}
        {model.flaggedSince ? (
          <DescriptionListItem label="Unqualified since">
            <Text testId="bant-flagged-since">{model.flaggedSince}</Text>
          </DescriptionListItem>
        ) : null}
        <DescriptionListItem label="Checked">
          <Text testId="bant-checked-at">{model.checkedAt || 'never'}</Text>
        </DescriptionListItem>
      </DescriptionList>
    </Flex>
  );
}
