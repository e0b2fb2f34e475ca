"""Cross-cutting pieces every app may use: the error hierarchy, the API error shape, logging."""
