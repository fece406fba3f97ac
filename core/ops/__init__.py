"""Operations: health, readiness and metrics over HTTP."""
