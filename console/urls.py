"""Console URLs (namespace ``console``); the project mounts them at the site root."""

from django.urls import path

from . import activity, dashboard, events, lockouts, models_page, people, review, rules, sites, thresholds, thumbs

app_name = "console"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("dashboard/live/", dashboard.dashboard_live, name="dashboard_live"),
    path("dashboard/worker/", dashboard.worker_status, name="worker_status"),
    path("people/", people.people_list, name="people"),
    path("people/new/", people.person_new, name="person_new"),
    path("people/<int:pk>/", people.person_detail, name="person"),
    path("people/<int:pk>/edit/", people.person_edit, name="person_edit"),
    path("people/<int:pk>/delete/", people.person_delete, name="person_delete"),
    path("people/<int:pk>/photos/", people.person_photos, name="person_photos"),
    path("people/<int:pk>/upload/", people.person_upload, name="person_upload"),
    path("photos/<int:pk>/image/", people.face_image, name="face_image"),
    path("photos/<int:pk>/thumb/", thumbs.photo_thumb, name="photo_thumb"),
    path("photos/<int:pk>/delete/", people.face_delete, name="face_delete"),
    path("photos/<int:pk>/choose/", people.face_choose, name="face_choose"),
    path("sites/", sites.site_list, name="sites"),
    path("sites/new/", sites.site_edit, name="site_new"),
    path("sites/<int:pk>/edit/", sites.site_edit, name="site_edit"),
    path("sites/<int:pk>/threshold/", thresholds.thresholds, name="thresholds"),
    path("sites/<int:pk>/threshold/plot.svg", thresholds.threshold_plot, name="threshold_plot"),
    path("sites/<int:pk>/threshold/liveness.svg", thresholds.liveness_plot, name="liveness_plot"),
    path("sites/<int:site_pk>/cameras/new/", sites.camera_new, name="camera_new"),
    path("cameras/<int:pk>/edit/", sites.camera_edit, name="camera_edit"),
    path("cameras/<int:pk>/rotate/", sites.camera_rotate, name="camera_rotate"),
    path("cameras/<int:pk>/revoke/", sites.camera_revoke, name="camera_revoke"),
    path("cameras/<int:pk>/rotate-secret/", sites.camera_rotate_secret, name="camera_rotate_secret"),
    path("events/", events.event_list, name="events"),
    path("events.csv", events.event_csv, name="events_csv"),
    path("events/<int:pk>/", events.event_detail, name="event"),
    path("events/<int:pk>/snapshot/", events.event_snapshot, name="event_snapshot"),
    path("events/<int:pk>/thumb/", thumbs.event_thumb, name="event_thumb"),
    path("events/<int:pk>/faces/<int:index>/thumb/", thumbs.event_face_thumb, name="event_face_thumb"),
    path("events/<int:pk>/review/", review.review_event, name="event_review"),
    path("events/<int:pk>/review/<int:review_pk>/undo/", review.undo_review, name="review_undo"),
    path("strangers/", review.stranger_list, name="strangers"),
    path("strangers/act/", review.stranger_action, name="stranger_action"),
    path("models/", models_page.models_page, name="models"),
    path("models/act/", models_page.models_action, name="models_action"),
    path("lockouts/", lockouts.lockouts, name="lockouts"),
    path("activity/", activity.activity, name="activity"),
    path("lockouts/unlock/", lockouts.unlock, name="lockout_unlock"),
    path("rules/", rules.rules_index, name="rules"),  # access rules (console/rules.py)
    path("rules/groups/new/", rules.group_edit, name="group_new"),
    path("rules/groups/<int:pk>/", rules.group_edit, name="group_edit"),
    path("rules/levels/new/", rules.level_edit, name="level_new"),
    path("rules/levels/<int:pk>/", rules.level_edit, name="level_edit"),
    path("rules/sites/<int:site_pk>/holidays/", rules.holiday_add, name="holiday_add"),
    path("rules/holidays/<int:pk>/delete/", rules.holiday_delete, name="holiday_delete"),
    path("people/<int:pk>/credentials/", rules.person_credentials, name="person_credentials"),
]
