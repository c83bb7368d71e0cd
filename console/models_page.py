"""The Models page (admins): the active embedder, a switch with its live progress (htmx polls the partial
while re-embedding), the failed photos and the people who would lose their last usable photo, and every
site's threshold with the model it belongs to. Start, switch anyway, cancel: access.model_switch."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from access import model_switch
from faceaccess import roles

from .base import role_required


@role_required(roles.OVERSEERS)  # auditors read it; the actions below are admins'
def models_page(request):
    template = "console/_model_switch.html" if request.htmx else "console/models.html"
    return render(request, template, {"s": model_switch.status()})


@role_required(roles.ADMINS)
@require_POST
def models_action(request):
    action, who = request.POST.get("action", ""), request.user.get_username()
    try:
        if action == "start" and request.POST.get("confirm") != "1":
            return _confirm_switch(request, request.POST.get("model", ""))
        if action == "start":
            row = model_switch.start(request.POST.get("model", ""), by=who)
            messages.success(request, f"Re-embedding every enrolled photo with {row.target_name}; "
                                      f"{row.active_name} keeps deciding until it is done.")
        elif action == "confirm":
            row = model_switch.confirm(by=who)
            messages.success(request, f"{row.active_name} is now the active model.")
        elif action == "cancel":
            row = model_switch.cancel(by=who)
            messages.success(request, f"Switch cancelled: {row.active_name} stays the active model.")
        else:
            messages.error(request, f"Unknown action {action!r}.")
    except model_switch.SwitchError as exc:
        messages.error(request, f"Not done: {exc.detail}.")
    return redirect("console:models")


def _confirm_switch(request, target: str):
    """Before a switch: the two models side by side, with what the model card measured for each, and what the
    switch does to every site's threshold. Nothing starts until this page's button is pressed."""
    s = model_switch.status()
    models = {m["name"]: m for m in s["models"]}
    if target not in models or models[target]["active"]:
        messages.error(request, f"Not done: choose another model than the active one (got {target!r}).")
        return redirect("console:models")
    active = next(m for m in s["models"] if m["active"])
    return render(request, "console/models_confirm.html", {"s": s, "active": active, "target": models[target]})
