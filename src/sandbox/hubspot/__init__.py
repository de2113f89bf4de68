"""The HubSpot CRM v3/v4 stand-in: deals, tasks, search, batches, properties, associations, owners."""
