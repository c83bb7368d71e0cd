"""Sites and cameras: create and edit; a camera's key is shown once (with a copy button and a curl line),
and can be rotated or revoked."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from access import liveness
from access.cameras import rotate_webhook_secret
from access.models import Camera, Site
from faceaccess import roles

from .base import role_required
from .forms import CameraForm, SiteForm


@role_required()
def site_list(request):
    sites = Site.objects.prefetch_related(Prefetch("cameras", Camera.objects.select_related("stream_status"))) \
        .order_by("name")
    return render(request, "console/sites.html", {"sites": sites})


def weakenings(before: Site | None, form: SiteForm) -> list[str]:
    """What a save would loosen at a door: a larger threshold (more faces let in), liveness no longer enforced.
    These ask for a confirmation and a reason first, like the threshold page."""
    if before is None:
        return []
    out, data = [], form.cleaned_data
    new_threshold = data.get("match_threshold")
    if new_threshold is not None and new_threshold > before.match_threshold + 1e-9:
        out.append(f"the threshold goes up from {before.match_threshold:.3f} to {new_threshold:.3f}: more faces "
                   "are let in, strangers included")
    if before.liveness_policy == "enforce" and data.get("liveness_policy") != "enforce":
        out.append(f"liveness is no longer enforced ({data.get('liveness_policy')}): a printed photo or a screen "
                   "of an enrolled person can open the door")
    return out


@role_required(roles.ADMINS)
def site_edit(request, pk: int | None = None):
    site = get_object_or_404(Site, pk=pk) if pk else None
    before = Site.objects.get(pk=pk) if pk else None  # the form's instance changes while it validates
    form = SiteForm(request.POST or None, instance=site)
    loosened: list[str] = []
    if request.method == "POST" and form.is_valid():
        loosened = weakenings(before, form)
        reason = request.POST.get("reason", "").strip()[:500]
        if not loosened or (request.POST.get("confirm") == "1" and reason):
            if loosened:
                details = {"what": "site loosened", "reason": reason}
                form.instance.get_additional_data = lambda: details  # kept with the audit entry
            site = form.save()
            messages.success(request, f"Site {site.name} saved (threshold {site.match_threshold:.3f}).")
            return redirect("console:sites")
    return render(request, "console/site_form.html", {
        "form": form, "site": site, "loosened": loosened,
        "reason_missing": bool(loosened) and request.POST.get("confirm") == "1",
        "liveness_missing": None if liveness.installed() else liveness.not_installed_message()})


@role_required(roles.ADMINS)
def camera_new(request, site_pk: int):
    site = get_object_or_404(Site, pk=site_pk)
    form = CameraForm(request.POST or None, instance=Camera(site=site))
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            camera = form.save(commit=False)
            key = camera.set_new_key()
            camera.save()
            form.save_m2m()
        return _show_key(request, camera, key, "created", secret=camera.webhook_secret)
    return render(request, "console/camera_form.html", {"form": form, "site": site, "camera": None})


@role_required(roles.ADMINS)
def camera_edit(request, pk: int):
    camera = get_object_or_404(Camera.objects.select_related("site"), pk=pk)
    form = CameraForm(request.POST or None, instance=camera)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Camera {camera.name} saved.")
        return redirect("console:sites")
    return render(request, "console/camera_form.html", {"form": form, "site": camera.site, "camera": camera})


@require_POST
@role_required(roles.ADMINS)
def camera_rotate(request, pk: int):
    camera = get_object_or_404(Camera, pk=pk)
    key = camera.set_new_key()
    camera.active = True
    camera.save(update_fields=["key_prefix", "key_hash", "active"])
    return _show_key(request, camera, key, "given a new key (the old one no longer works)")


@require_POST
@role_required(roles.ADMINS)
def camera_rotate_secret(request, pk: int):
    """A new webhook signing secret, shown once; the old one no longer verifies (the door controller needs the
    new one). The audit trail records that it changed, never the value."""
    camera = get_object_or_404(Camera, pk=pk)
    secret = rotate_webhook_secret(camera)
    response = render(request, "console/camera_secret.html", {"camera": camera, "secret": secret})
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@role_required(roles.ADMINS)
def camera_revoke(request, pk: int):
    camera = get_object_or_404(Camera, pk=pk)
    camera.active = False
    camera.save(update_fields=["active"])
    messages.success(request, f"Camera {camera.name} revoked: its key is refused from now on. "
                              "Rotate the key to bring it back.")
    return redirect("console:sites")


def _show_key(request, camera: Camera, key: str, what: str, secret: str | None = None):
    # Rendered, never stored or redirected to: the key exists only in this one response (and the webhook secret
    # only in the one that created the camera; rotating the key leaves the secret unshown).
    snapshot_url = request.build_absolute_uri("/api/v1/snapshots/")
    response = render(request, "console/camera_key.html", {
        "camera": camera, "key": key, "what": what, "snapshot_url": snapshot_url, "secret": secret,
    })
    response["Cache-Control"] = "no-store"
    return response
