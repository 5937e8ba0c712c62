"""The DEA-C01 exam guide's task statements (v1.0): domain, weight and title, as data."""

DOMAINS = {
    1: ("Data Ingestion and Transformation", 34),
    2: ("Data Store Management", 26),
    3: ("Data Operations and Support", 22),
    4: ("Data Security and Governance", 18),
}

TASKS = {
    "1.1": "Perform data ingestion",
    "1.2": "Transform and process data",
    "1.3": "Orchestrate data pipelines",
    "1.4": "Apply programming concepts",
    "2.1": "Choose a data store",
    "2.2": "Understand data cataloging systems",
    "2.3": "Manage the lifecycle of data",
    "2.4": "Design data models and schema evolution",
    "3.1": "Automate data processing by using AWS services",
    "3.2": "Analyze data by using AWS services",
    "3.3": "Maintain and monitor data pipelines",
    "3.4": "Ensure data quality",
    "4.1": "Apply authentication mechanisms",
    "4.2": "Apply authorization mechanisms",
    "4.3": "Ensure data encryption and masking",
    "4.4": "Prepare logs for audit",
    "4.5": "Understand data privacy and governance",
}
