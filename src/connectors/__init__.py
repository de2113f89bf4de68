"""CRM connectors: the only code that speaks to Salesforce or HubSpot client libraries."""
