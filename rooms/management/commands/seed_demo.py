"""Seed the demo of CONTRACT §1: public room `lobby`; alice, bob and moderator mod (DEMO_PASSWORD).

Idempotent: a second run changes nothing but keeps the passwords equal to DEMO_PASSWORD.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import MODERATORS_GROUP
from rooms.models import Room
from rooms.services import room_create, room_join


class Command(BaseCommand):
    help = "Create the demo room and users (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        password = settings.DEMO_PASSWORD
        users = {}
        for username in ("alice", "bob", "mod"):
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            if created or not user.check_password(password):
                user.set_password(password)
                user.save()
            users[username] = user
        moderator = users["mod"]
        if not moderator.is_staff:
            moderator.is_staff = True
            moderator.save(update_fields=["is_staff"])
        moderator.groups.add(Group.objects.get(name=MODERATORS_GROUP))
        lobby = Room.objects.filter(slug="lobby").first()
        if lobby is None:
            lobby = room_create(user=moderator, name="Lobby", slug="lobby", topic="Say hello!")
        for user in users.values():
            room_join(user=user, room=lobby)
        self.stdout.write("demo ready: room lobby; users alice, bob, mod (password from DEMO_PASSWORD)")
