from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="token_epoch",
            field=models.PositiveIntegerField(
                default=0,
                editable=False,
                help_text="Raised when the user's credentials end (password change, deactivation): older tokens are refused.",
            ),
        ),
    ]
