"""Create the `Moderators` group (CONTRACT §1) with what moderators need and nothing more:
view everything of chat, act on messages, bans, mutes, reports and slow mode; never edit users'
passwords or grant permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODERATOR_PERMISSIONS = {
    "accounts": ["view_user"],
    "rooms": [
        "view_room", "change_room",
        "view_membership",
        "view_message", "change_message", "delete_message",
        "view_report", "change_report",
        "view_auditlog",
        "view_roomban", "add_roomban", "change_roomban", "delete_roomban",
        "view_roommute", "add_roommute", "change_roommute", "delete_roommute",
        "view_siteban", "add_siteban", "change_siteban", "delete_siteban",
    ],
}


def create_moderators_group(apps, schema_editor):
    # Permissions are normally made after all migrations; make them now so the group can hold them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="Moderators")
    for app_label, codenames in MODERATOR_PERMISSIONS.items():
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        )


def remove_moderators_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Moderators").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0001_initial"),
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_moderators_group, remove_moderators_group)]
