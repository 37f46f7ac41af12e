"""Saga orchestrator that provisions ISP subscribers atomically across the operator's systems."""
