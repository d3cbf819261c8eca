"""The desktop app's widgets: each draws one thing and emits what the user asked for."""
