"""Response: playbooks map cases to actions; plans are data, an executor performs them."""
