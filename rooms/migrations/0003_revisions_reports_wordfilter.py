"""Edit history, report snapshots and de-duplication, the word filter (CONTRACT §7).

Besides the schema: existing reports get the message's current text as their snapshot (the best
copy there is), duplicate open reports of one message by one reporter are resolved but the oldest
(so the new constraint holds), and the `Moderators` group gets the new tables' permissions.
"""

from django.contrib.auth.management import create_permissions
from django.db.models import Count, Min

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


# Picked up by tests/conftest.py too (every migration's MODERATOR_PERMISSIONS), which re-creates
# the group after a transactional test flushed it.
MODERATOR_PERMISSIONS = {
    "rooms": [
        "view_filterterm", "add_filterterm", "change_filterterm", "delete_filterterm",
    ],
}


def snapshot_and_dedupe_reports(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Check foreign keys now, not at commit: pending checks would forbid the ALTER TABLEs below.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    Report = apps.get_model("rooms", "Report")
    for report in Report.objects.filter(snapshot="").select_related("message").iterator():
        report.snapshot = report.message.body_raw or report.message.body
        report.save(update_fields=["snapshot"])
    duplicates = (
        Report.objects.filter(resolved__isnull=True, reporter__isnull=False)
        .values("message_id", "reporter_id")
        .annotate(count=Count("id"), first=Min("id"))
        .filter(count__gt=1)
    )
    for row in duplicates:
        Report.objects.filter(
            message_id=row["message_id"], reporter_id=row["reporter_id"], resolved__isnull=True
        ).exclude(pk=row["first"]).update(resolved=django.utils.timezone.now())


def grant_moderator_permissions(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="Moderators")
    for app_label, codenames in MODERATOR_PERMISSIONS.items():
        group.permissions.add(*Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))


class Migration(migrations.Migration):

    dependencies = [
        ('rooms', '0002_moderators_group'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.CreateModel(
            name='FilterTerm',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('term', models.CharField(help_text='A word or phrase, matched as whole words, any case or width.', max_length=100)),
                ('normalized', models.CharField(editable=False, max_length=400)),
                ('action', models.CharField(choices=[('block', 'block: refuse the message'), ('flag', 'flag: let it through and report it')], default='block', max_length=8)),
                ('created', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['normalized', 'id'],
            },
        ),
        migrations.CreateModel(
            name='MessageRevision',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('body_raw', models.TextField(help_text='The replaced text, as the author typed it.')),
                ('body', models.TextField(help_text='The replaced text, sanitised.')),
                ('written', models.DateTimeField(help_text='When the replaced text was posted, or edited in.')),
                ('replaced', models.DateTimeField(default=django.utils.timezone.now, help_text='When the edit replaced it.')),
            ],
            options={
                'ordering': ['message', 'id'],
            },
        ),
        migrations.AddField(
            model_name='report',
            name='snapshot',
            field=models.TextField(blank=True, default='', help_text="The message's text (as typed) when it was reported: edits do not change it."),
        ),
        migrations.AlterField(
            model_name='auditlog',
            name='action',
            field=models.CharField(choices=[('message_delete', 'Message Delete'), ('message_restore', 'Message Restore'), ('room_ban', 'Room Ban'), ('room_unban', 'Room Unban'), ('room_mute', 'Room Mute'), ('room_unmute', 'Room Unmute'), ('site_ban', 'Site Ban'), ('site_unban', 'Site Unban'), ('room_update', 'Room Update'), ('report_resolve', 'Report Resolve'), ('member_invite', 'Member Invite'), ('user_deactivate', 'User Deactivate'), ('user_reactivate', 'User Reactivate'), ('filter_term_add', 'Filter Term Add'), ('filter_term_change', 'Filter Term Change'), ('filter_term_delete', 'Filter Term Delete')], max_length=32),
        ),
        migrations.AlterField(
            model_name='report',
            name='reporter',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='reports', to=settings.AUTH_USER_MODEL),
        ),
        migrations.RunPython(snapshot_and_dedupe_reports, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='report',
            index=models.Index(fields=['reporter', 'created'], name='report_reporter_created'),
        ),
        migrations.AddConstraint(
            model_name='report',
            constraint=models.UniqueConstraint(condition=models.Q(('reporter__isnull', False), ('resolved__isnull', True)), fields=('message', 'reporter'), name='report_one_open_per_reporter'),
        ),
        migrations.AddConstraint(
            model_name='report',
            constraint=models.UniqueConstraint(condition=models.Q(('reporter__isnull', True), ('resolved__isnull', True)), fields=('message',), name='report_one_open_by_system'),
        ),
        migrations.AddField(
            model_name='filterterm',
            name='created_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='filterterm',
            name='room',
            field=models.ForeignKey(blank=True, help_text='Only in this room; empty for every room.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='filter_terms', to='rooms.room'),
        ),
        migrations.AddField(
            model_name='messagerevision',
            name='message',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='revisions', to='rooms.message'),
        ),
        migrations.AddConstraint(
            model_name='filterterm',
            constraint=models.UniqueConstraint(fields=('normalized', 'room'), name='filterterm_unique_in_room'),
        ),
        migrations.AddConstraint(
            model_name='filterterm',
            constraint=models.UniqueConstraint(condition=models.Q(('room__isnull', True)), fields=('normalized',), name='filterterm_unique_everywhere'),
        ),
        migrations.RunPython(grant_moderator_permissions, migrations.RunPython.noop),
    ]
