"""Web pages of chatsite: the room list (with a create-room form) and the chat page.

Thin views: access through rooms.selectors, writes through rooms.services. The chat page itself
is rendered by static/js/chat-page.js, which joins the room over /ws/chat/.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import User
from rooms import selectors, services
from rooms.exceptions import BadRequest, Conflict, Forbidden, NotFound
from rooms.models import Membership, Room


class RoomCreateForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)
    slug = forms.SlugField(
        max_length=64,
        required=False,
        help_text="Letters, digits, - and _; made from the name when left empty.",
    )
    topic = forms.CharField(max_length=500, required=False, strip=True)
    is_private = forms.BooleanField(required=False, label="Private (invitation only)")


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a `login_required` view: its user is a signed-in account."""

    user: User


@login_required
@require_http_methods(["GET", "POST"])
def room_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Public rooms and the user's private rooms; POST creates a room and opens it."""
    form = RoomCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            room = services.room_create(
                user=request.user,
                name=data["name"],
                slug=data["slug"] or None,
                topic=data["topic"],
                is_private=data["is_private"],
            )
        except Conflict:
            form.add_error("slug", "This slug is taken; choose another.")
        except BadRequest as error:
            form.add_error("slug", error.detail)
        else:
            return redirect("room_detail", slug=room.slug)
    rooms = list(selectors.room_list_for_user(user=request.user))
    member_of = set(Membership.objects.filter(user=request.user).values_list("room_id", flat=True))
    for room in rooms:
        room.is_member = room.id in member_of  # type: ignore[attr-defined]  # a flag for the template
    status = 400 if request.method == "POST" else 200
    return render(request, "rooms/room_list.html", {"rooms": rooms, "form": form}, status=status)


@login_required
@require_GET
def room_detail(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    """The chat page; 404 for a missing room or a private one the user is not in, 403 when banned."""
    try:
        room = selectors.room_get_for_reader(user=request.user, slug=slug)
    except NotFound:
        raise Http404("No such room.") from None
    except Forbidden as error:
        return render(request, "rooms/room_forbidden.html", {"slug": slug, "detail": error.detail}, status=403)
    is_muted = selectors.user_is_room_muted(user_id=request.user.id, room_id=room.id)
    config = {
        "room": room.slug,
        "username": request.user.get_username(),
        "userId": request.user.id,
        "canModerate": selectors.user_can_moderate_room(user=request.user, room=room),
        "isMuted": is_muted,
        "slowModeSeconds": room.slow_mode_seconds,
        "maxBodyChars": settings.CHAT_MAX_BODY_CHARS,
        "typingIntervalSeconds": settings.CHAT_TYPING_INTERVAL_SECONDS,
    }
    return render(
        request,
        "rooms/room_detail.html",
        {"room": room, "room_label": room_label(room, request.user), "chat_config": config},
    )


def room_label(room: Room, user: User) -> str:
    """How the page names a room: `#slug`, or for a DM the other person (its name is both usernames)."""
    if not room.is_dm:
        return f"#{room.slug}"
    others = [name for name in room.name.split(", ") if name != user.get_username()]
    return others[0] if others else room.name
