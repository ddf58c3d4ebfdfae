from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        # big and small exist already: adopt them into Django's state
        # without touching the database.
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel("Big", [
                ("id", models.BigIntegerField(primary_key=True)),
                ("account", models.IntegerField()),
                ("note", models.TextField(null=True)),
            ], options={"db_table": "big"}),
            migrations.CreateModel("Small", [
                ("id", models.BigIntegerField(primary_key=True)),
                ("v", models.TextField(null=True)),
            ], options={"db_table": "small"}),
        ]),
        migrations.CreateModel("Payee", [
            ("id", models.BigAutoField(primary_key=True)),
            ("name", models.TextField()),
        ], options={"db_table": "payees"}),
    ]
