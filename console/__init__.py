"""The admins' console: server-rendered pages (templates in ``console/templates/``), htmx for the live parts.

The top layer: its pages join people (enrollment) with sites and events (access), so it may import every
app, and no app imports it. The domain work stays in the apps' own modules; the views only call it."""
