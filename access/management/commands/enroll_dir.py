"""manage.py enroll_dir DIR --site NAME: enroll every ``<name>_<anything>.jpg`` of a folder and let those
people enter the site (the import itself is :mod:`enrollment.importing`)."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from access.models import Site
from enrollment.importing import import_photos, photo_files
from enrollment.models import FaceImage, Person


class Command(BaseCommand):
    help = "Enroll a directory of face photos named <name>_<anything>.jpg (one person per name) into a site."

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--site", required=True, help="Site name or id the people belong to.")
        parser.add_argument("--name-from", choices=["prefix", "dir"], default="prefix",
                            help="prefix: left of the first '_' (default); dir: the parent folder's name.")
        parser.add_argument("--recursive", action="store_true")
        parser.add_argument("--sync", action="store_true",
                            help="Embed here (loads the engine in this process) instead of queueing.")
        parser.add_argument("--wait", type=float, default=0.0,
                            help="Seconds to wait for the worker to finish, then print the statuses.")

    def handle(self, *args, directory: Path, site: str, name_from: str, recursive: bool, sync: bool,
               wait: float, **opts) -> None:
        site_obj = (Site.objects.filter(pk=int(site)).first() if site.isdigit() else None) or Site.objects.filter(
            name=site
        ).first()
        if site_obj is None:
            raise CommandError(f"no site {site!r}")
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory")
        files = photo_files(directory, name_from, recursive)
        if not files:
            raise CommandError(f"no <name>_<anything>.jpg images in {directory}")
        if sync:
            from enrollment.embedding import embed_face_image
        ids, skipped = [], []
        for item in tqdm(import_photos(files, name_from, queue=not sync), total=len(files), unit="img",
                         desc="enrolling"):
            if item.face is None:
                skipped.append(f"{item.path.name}: {item.skipped}")
                continue
            item.person.sites.add(site_obj)
            ids.append(item.face.pk)
            if sync:
                try:
                    embed_face_image(item.face.pk)
                except Exception:
                    pass  # recorded on the row as failed with its reason
        for line in skipped:
            self.stderr.write(f"skipped {line}")
        if not sync and wait > 0:
            self._wait(ids, wait)
        self._summary(ids)

    def _wait(self, ids: list[int], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        busy = ("pending", "processing")
        while time.monotonic() < deadline and FaceImage.objects.filter(pk__in=ids, status__in=busy).exists():
            time.sleep(0.5)

    def _summary(self, ids: list[int]) -> None:
        counts: dict[str, int] = {}
        several, dominant = [], 0
        for face in FaceImage.objects.filter(pk__in=ids).select_related("person"):
            counts[face.status] = counts.get(face.status, 0) + 1
            usable = [c for c in face.candidates or [] if c.get("usable")]
            if face.status == "several_faces":
                several.append(face.pk)
                where = "; ".join(f"face {c['index']}: {c['size_px']:.0f} px centred at "
                                  f"({(c['box'][0] + c['box'][2]) / 2:.0f}, {(c['box'][1] + c['box'][3]) / 2:.0f})"
                                  for c in usable)
                self.stderr.write(f"{face.person.name} / {face.original_name}: several_faces (image {face.pk}, "
                                  f"{face.width}x{face.height}): {where}")
            elif face.status not in ("enrolled", "pending", "processing"):
                self.stderr.write(f"{face.person.name} / {face.original_name}: {face.status}: {face.reason}")
            elif face.status == "enrolled" and len(usable) > 1:
                dominant += 1
                self.stdout.write(f"{face.person.name} / {face.original_name}: enrolled face {face.chosen_face} of "
                                  f"{len(usable)} (image {face.pk}): {face.choice_reason}")
        people = Person.objects.filter(face_images__pk__in=ids).distinct().count()
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        self.stdout.write(f"{len(ids)} images of {people} people: {summary or 'nothing stored'}")
        if dominant:
            self.stdout.write(f"{dominant} of the enrolled photos show several faces; the dominant one was taken "
                              "(listed above). To take another one: "
                              "POST /api/v1/faces/<image>/choose/ {\"face\": <index>}.")
        if several:
            self.stdout.write(
                f"{len(several)} photo{'s show' if len(several) != 1 else ' shows'} several faces and none dominates "
                f"(images {', '.join(map(str, several))}). See each face with GET /api/v1/faces/<image>/ (\"faces\": "
                "index, box, size) and enroll one with POST /api/v1/faces/<image>/choose/ {\"face\": <index>}, "
                "or upload a photo showing only that person."
            )
