from django.contrib import admin

from .models import FaceEmbedding, FaceImage, Person


class FaceImageInline(admin.TabularInline):
    model = FaceImage
    extra = 0
    fields = ("image", "status", "reason", "score", "size_px", "uploaded_at")
    readonly_fields = ("status", "reason", "score", "size_px", "uploaded_at")


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ("name", "external_id", "active", "valid_from", "valid_until")
    list_filter = ("active",)
    search_fields = ("name", "external_id")
    inlines = [FaceImageInline]


@admin.register(FaceImage)
class FaceImageAdmin(admin.ModelAdmin):
    list_display = ("id", "person", "status", "score", "size_px", "uploaded_at")
    list_filter = ("status",)


@admin.register(FaceEmbedding)
class FaceEmbeddingAdmin(admin.ModelAdmin):
    list_display = ("id", "person", "face_image", "model_name", "model_version", "created_at")
    list_filter = ("model_name", "model_version")
    exclude = ("embedding",)
