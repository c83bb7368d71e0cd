"""The Lockouts page (admins): the usernames that failed to log in from an address and are still remembered, the
ones locked out first, each with an Unlock button (faceaccess.api.auth: django-axes' records, per username and
address; ``manage.py axes_reset_username <name>`` does the same from a shell)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from faceaccess import roles
from faceaccess.api import auth

from .base import role_required


@role_required(roles.ADMINS)
def lockouts(request):
    rows = auth.current_lockouts()
    rows.sort(key=lambda r: not r["locked"])  # stable: the locked ones first, each group most recent first
    return render(request, "console/lockouts.html", {"rows": rows, "limit": settings.FACEACCESS_LOGIN_FAILURE_LIMIT})


@role_required(roles.ADMINS)
@require_POST
def unlock(request):
    username = request.POST.get("username") or None  # "" = the failures recorded without a username
    ip_address = request.POST.get("ip_address") or None
    count = auth.unlock(username, ip_address, by=request.user.get_username())
    who = f"{username or '(no username)'} from {ip_address or '(no address)'}"
    if count:
        messages.success(request, f"Unlocked {who}: it may log in from there again.")
    else:
        messages.info(request, f"Nothing to unlock for {who} (the lockout had already ended).")
    return redirect("console:lockouts")
