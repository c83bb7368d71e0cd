"""Access rules: groups, access levels (doors x weekly schedule x validity), holidays per site, and the second
factor (PIN or card) per door. ``schedule`` and ``factors`` are pure (no Django); ``models`` holds the tables
(imported by :mod:`access.models`); ``loading`` turns rows into the pure rules; ``credentials`` keeps PINs and
cards."""
