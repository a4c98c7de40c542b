"""Web pages (CONTRACT §4): `/` lists rooms, `/rooms/{slug}/` is the chat page."""

from django.urls import path

from rooms import views

urlpatterns = [
    path("", views.room_list, name="room_list"),
    path("rooms/<slug:slug>/", views.room_detail, name="room_detail"),
]
