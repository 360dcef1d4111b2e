"""What ops watch: figures, probes, Prometheus metrics and the ops page. Reads the engine; the engine never imports it."""
