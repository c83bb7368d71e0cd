"""People pages: list with search and filters, create/edit/delete, the person page with live photo
statuses, uploads (several at once, drag and drop, webcam) and the possible-mix-up warning."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from access import liveness
from access.lifecycle.erasure import erase_person
from access.models import Site
from access.thresholds import strictest_threshold
from enrollment import gallery
from enrollment.embedding import ChoiceError, choose_face
from enrollment.faces import create_face_image
from enrollment.models import FaceEmbedding, FaceImage, Person
from faceaccess import roles
from faceaccess.uploads import UploadError, validate_image_bytes
from recognition.pipelines import current_embedder_name

from .base import page, role_required
from .forms import PersonForm
from .rules import person_context

SETTLED = {FaceImage.Status.ENROLLED, FaceImage.Status.NO_FACE, FaceImage.Status.SEVERAL_FACES,
           FaceImage.Status.FAILED}
PER_PAGE = 50


@role_required()
def people_list(request):
    people = Person.objects.annotate(
        photos=Count("face_images", distinct=True),
        enrolled=Count("face_images", filter=Q(face_images__status="enrolled"), distinct=True),
    ).prefetch_related("sites").order_by("name", "id")
    q = request.GET.get("q", "").strip()
    if q:
        people = people.filter(Q(name__icontains=q) | Q(external_id__icontains=q))
    active = request.GET.get("active", "")
    if active in ("yes", "no"):
        people = people.filter(active=active == "yes")
    site = request.GET.get("site", "")
    if site.isdigit():
        people = people.filter(sites=int(site))
    if request.GET.get("no_photo"):
        people = people.filter(enrolled=0)
    offset, number = page(request, PER_PAGE)
    total = people.count()
    rows = list(people[offset:offset + PER_PAGE])
    return render(request, "console/people_list.html", {
        "people": rows, "total": total, "page": number, "has_next": offset + PER_PAGE < total,
        "sites": Site.objects.all(), "filters": request.GET, "filtered": bool(q or active or site or
                                                                              request.GET.get("no_photo")),
    })


@role_required(roles.EDITORS)
def person_new(request):
    form = PersonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        person = form.save()
        messages.success(request, f"{person.name} created. Add photos to enroll them.")
        return redirect("console:person", person.pk)
    return render(request, "console/person_form.html", {"form": form, "person": None})


@role_required(roles.EDITORS)
def person_edit(request, pk: int):
    person = get_object_or_404(Person, pk=pk)
    form = PersonForm(request.POST or None, instance=person)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"{person.name} saved.")
        return redirect("console:person", person.pk)
    return render(request, "console/person_form.html", {"form": form, "person": person})


@role_required(roles.EDITORS)
def person_delete(request, pk: int):
    person = get_object_or_404(Person, pk=pk)
    counts = {"photos": person.face_images.count(), "embeddings": person.embeddings.count()}
    if request.method == "POST":
        name, with_history = person.name, request.POST.get("with_history") == "on"
        if with_history and roles.role_of(request.user) != roles.ADMIN:
            return render(request, "403.html", status=403)  # only admins erase history (door snapshots)
        erased = erase_person(person, with_history=with_history)
        history = f" and {erased['snapshots']} door snapshots" if with_history else ""
        messages.success(request, f"{name} erased: {erased['photos']} photos, {erased['embeddings']} embeddings"
                                  f"{history}. The access log keeps its events without the name.")
        return redirect("console:people")
    return render(request, "console/person_delete.html", {"person": person, **counts})


@role_required()
def person_detail(request, pk: int):
    person = get_object_or_404(Person.objects.prefetch_related("sites"), pk=pk)
    return render(request, "console/person.html", {
        "person": person, **_photos_context(person), **person_context(person),
    })


@role_required()
def person_photos(request, pk: int):
    """The photo grid alone: htmx polls it while any photo is still being processed."""
    person = get_object_or_404(Person, pk=pk)
    return render(request, "console/_photos.html", {"person": person, **_photos_context(person)})


def _photos_context(person: Person) -> dict:
    faces = list(person.face_images.order_by("id"))
    return {
        "faces": faces,
        "busy": any(f.status not in SETTLED for f in faces),
        "enrolled": sum(1 for f in faces if f.status == FaceImage.Status.ENROLLED),
        # shown beside a photo with several faces, to tell which one is this person
        "enrolled_photos": [f for f in faces if f.status == FaceImage.Status.ENROLLED and f.box][:3],
        "warnings": possible_mix_ups(person),
        "recapture_under": liveness.DEFAULT_THRESHOLD,  # a photo of a photo or of a screen (a warning only)
    }


def possible_mix_ups(person: Person) -> list[str]:
    """Photos of this person that are closer to a *different* enrolled person than the threshold that
    decides at their sites: a duplicate identity, or someone else's photo enrolled here."""
    model = current_embedder_name()
    embeddings = list(FaceEmbedding.objects.filter(person=person, model_name=model).select_related("face_image"))
    if not embeddings:
        return []
    try:
        threshold = strictest_threshold(person.sites.all())
    except Exception:  # no measured threshold for this model: nothing to compare with
        return []
    out, names = [], {}
    for emb in embeddings:
        for other in gallery.nearest_people(emb.embedding, emb.model_name, emb.model_version, k=3):
            if other.identity_id == person.pk:
                continue
            if other.distance <= threshold:
                if other.identity_id not in names:
                    names[other.identity_id] = Person.objects.filter(pk=other.identity_id).values_list(
                        "name", flat=True).first() or "a deleted person"
                out.append(f"Photo {emb.face_image.original_name or emb.face_image_id} is {other.distance:.3f} from "
                           f"{names[other.identity_id]} (threshold {threshold:.3f}): possibly the same person or "
                           "a mixed-up photo.")
            break
    return out


@require_POST
@role_required(roles.EDITORS)
def person_upload(request, pk: int):
    """One or more photos in the multipart field ``image``; answers JSON per file (the drop zone reads it)
    or redirects with a message (a plain form post)."""
    person = get_object_or_404(Person, pk=pk)
    files = request.FILES.getlist("image")
    stored, errors = [], []
    for upload in files:
        try:
            checked = validate_image_bytes(upload.read(), upload.name or "")
        except UploadError as exc:
            errors.append({"file": upload.name, "error": exc.code, "detail": exc.detail})
            continue
        stored.append(create_face_image(person, checked).pk)
    if not files:
        errors.append({"file": "", "error": "missing_image", "detail": "choose one or more photos first"})
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"stored": stored, "errors": errors}, status=200 if stored or not errors else 400)
    if stored:
        messages.success(request, f"{len(stored)} photo(s) stored; enrolling them now.")
    for e in errors:
        messages.error(request, f"{e['file'] or 'upload'}: {e['detail']}")
    return redirect("console:person", person.pk)


@require_POST
@role_required(roles.EDITORS)
def face_choose(request, pk: int):
    """Enroll the face the admin picked in a photo with several faces (no engine: its embedding is stored)."""
    face = get_object_or_404(FaceImage, pk=pk)
    raw = request.POST.get("face", "")
    try:
        if not raw.isdigit():
            raise ChoiceError("invalid", "pick one of the faces")
        choose_face(face.pk, int(raw), request.user.get_username())
    except ChoiceError as exc:
        messages.error(request, f"Not chosen: {exc.detail}")
    else:
        messages.success(request, f"Face {raw} of {face.original_name or 'the photo'} enrolled.")
    return redirect("console:person", face.person_id)


@require_POST
@role_required(roles.EDITORS)
def face_delete(request, pk: int):
    face = get_object_or_404(FaceImage, pk=pk)
    person_pk = face.person_id
    face.delete()
    messages.success(request, "Photo deleted (its file, crop and embeddings are erased).")
    return redirect("console:person", person_pk)


@role_required()
def face_image(request, pk: int):
    face = get_object_or_404(FaceImage, pk=pk)
    if not face.image:
        raise Http404
    return FileResponse(face.image.open("rb"))
