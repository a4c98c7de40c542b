"""Conversations (CONTRACT §5) and versions (§6): room kinds and DM pairs, room and message
versions, replies, mentions, reactions, notifications, the read-state and changes indexes.

The full-text index exists on PostgreSQL only (SQLite has no GIN and searches with LIKE): it is
built from `rooms.models.message_search_vector()`, the expression every search query uses.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def create_search_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from django.contrib.postgres.indexes import GinIndex

    from rooms.models import message_search_vector

    schema_editor.add_index(
        apps.get_model("rooms", "Message"), GinIndex(message_search_vector(), name="message_search")
    )


def drop_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS message_search")


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0003_revisions_reports_wordfilter"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="DirectPair",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ],
        ),
        migrations.CreateModel(
            name="Notification",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "kind",
                    models.CharField(choices=[("mention", "Mention"), ("reply", "Reply"), ("dm", "Dm")], max_length=8),
                ),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                ("is_read", models.BooleanField(default=False)),
            ],
            options={
                "ordering": ["-id"],
            },
        ),
        migrations.CreateModel(
            name="Reaction",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("emoji", models.CharField(max_length=64)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "ordering": ["id"],
            },
        ),
        migrations.AddField(
            model_name="message",
            name="mentions",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="reactions",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="reply_to",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="replies",
                to="rooms.message",
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="version",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="room",
            name="kind",
            field=models.CharField(choices=[("room", "room"), ("dm", "direct messages")], default="room", max_length=8),
        ),
        migrations.AddField(
            model_name="room",
            name="version",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name="room",
            name="owner",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="owned_rooms",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["room", "version"], name="message_room_version"),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("deleted__isnull", True)), fields=["room", "id", "author"], name="message_room_live"
            ),
        ),
        migrations.AddField(
            model_name="directpair",
            name="room",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, related_name="dm_pair", to="rooms.room"
            ),
        ),
        migrations.AddField(
            model_name="directpair",
            name="user_high",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="directpair",
            name="user_low",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="notification",
            name="message",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="notifications", to="rooms.message"
            ),
        ),
        migrations.AddField(
            model_name="notification",
            name="room",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="rooms.room"),
        ),
        migrations.AddField(
            model_name="notification",
            name="user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="notifications", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="reaction",
            name="message",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="reaction_rows", to="rooms.message"
            ),
        ),
        migrations.AddField(
            model_name="reaction",
            name="user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddConstraint(
            model_name="directpair",
            constraint=models.UniqueConstraint(fields=("user_low", "user_high"), name="directpair_unique_pair"),
        ),
        migrations.AddConstraint(
            model_name="directpair",
            constraint=models.CheckConstraint(
                condition=models.Q(("user_low__lt", models.F("user_high"))), name="directpair_ordered"
            ),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(fields=["user", "-id"], name="notification_user_id"),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("is_read", False)), fields=["user", "room", "message"], name="notification_unread"
            ),
        ),
        migrations.AddConstraint(
            model_name="notification",
            constraint=models.UniqueConstraint(fields=("message", "user"), name="notification_unique_message_user"),
        ),
        migrations.AddIndex(
            model_name="reaction",
            index=models.Index(fields=["message", "emoji", "id"], name="reaction_message_emoji"),
        ),
        migrations.AddConstraint(
            model_name="reaction",
            constraint=models.UniqueConstraint(
                fields=("message", "user", "emoji"), name="reaction_unique_message_user_emoji"
            ),
        ),
        migrations.RunPython(create_search_index, drop_search_index),
    ]
