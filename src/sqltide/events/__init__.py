"""Events and schedules: rules that fire on Amazon EventBridge-style schedule expressions."""
