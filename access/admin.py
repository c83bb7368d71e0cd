from django.contrib import admin

from enrollment.admin import PersonAdmin
from enrollment.models import Person

from .models import AccessEvent, AccessEventFace, AccessGrant, Camera, Site


class AccessGrantInline(admin.TabularInline):
    model = AccessGrant
    extra = 0
    autocomplete_fields = ("site",)


# Enrollment's person page, plus the sites each person may enter (enrollment knows nothing of sites).
admin.site.unregister(Person)


@admin.register(Person)
class PersonWithGrantsAdmin(PersonAdmin):
    list_filter = (*PersonAdmin.list_filter, "sites")
    inlines = [*PersonAdmin.inlines, AccessGrantInline]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "timezone", "match_threshold", "min_face_px", "min_detection_score")
    search_fields = ("name",)


@admin.register(Camera)
class CameraAdmin(admin.ModelAdmin):
    list_display = ("name", "site", "active", "key_prefix", "last_seen_at")
    list_filter = ("site", "active")
    readonly_fields = ("key_prefix", "last_seen_at", "created_at")
    filter_horizontal = ("allowed_people",)
    exclude = ("stream_username", "stream_password")  # a stream's credentials are never shown (the console sets them)


class AccessEventFaceInline(admin.TabularInline):
    model = AccessEventFace
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in AccessEventFace._meta.fields]


@admin.register(AccessEvent)
class AccessEventAdmin(admin.ModelAdmin):
    list_display = ("id", "received_at", "site", "camera", "status", "decision", "person", "latency_ms")
    list_filter = ("status", "decision", "site")
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in AccessEvent._meta.fields]
    inlines = [AccessEventFaceInline]
