"""The desktop app: Qt controllers and jobs here, the widgets in app/qt/widgets/."""
