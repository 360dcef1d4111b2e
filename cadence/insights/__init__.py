"""The marketer's insights: dashboard, charts, why people leave. Reads the engine; the engine never imports it."""
