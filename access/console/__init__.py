"""The admins' console: server-rendered pages (templates in the top-level templates/console/), htmx for
the live parts. It sits in the top layer because its pages join people (enrollment) with sites and
events (access); the domain work stays in the layers' own modules, the views only call it."""
