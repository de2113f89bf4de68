"""The Salesforce REST stand-in: sObjects, SOQL queries, collections, OAuth and limits."""
