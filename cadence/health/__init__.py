"""Relationship health: pure rules (rules.py), their labels, the service that stores and acts on them, and its receivers."""
