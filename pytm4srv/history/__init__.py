"""History: what changed in each hold and schedule through the API, who changed it and when."""
