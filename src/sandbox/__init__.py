"""The sandbox CRM: a local Salesforce and HubSpot stand-in for tests, the demo and benchmarks."""
