"""What this app tells the apps that depend on it, without knowing them.

``sending_resumed(tenant=...)``: a sender or the tenant became active again, so messages
that waited for it may go now. ``messaging`` listens and nudges the tenant's dispatch; this app
cannot call it directly (dependencies point towards ``tenants``, never away).
"""

from django.dispatch import Signal

sending_resumed = Signal()
