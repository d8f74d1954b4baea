"""Protocol adapters: one module per dialect (own API, TF Serving, V2, V2 repository), plus
health, metrics and the page. Adapters import shared helpers, never each other."""
