"""The [world] instance keys and WorldConfig.templates: defaults, checks, and template problems reported with the rest."""

from twisted.trial.unittest import TestCase

from mmoshard.world.config import makeConfig


class ConfigTests(TestCase):
    def test_defaults(self):
        """By default the shipped templates load, all offered, with the documented limits and the kill pause off."""
        config = makeConfig()
        self.assertEqual(config.instances_file, "etc/instances.toml")
        self.assertEqual(set(config.templates), {"deadmines", "emberforge", "arena"})
        self.assertEqual(config.instances, None)
        self.assertEqual(config.offered, tuple(config.templates))
        self.assertEqual((config.max_instances, config.instance_timeout, config.leave_party_grace,
                          config.test_pause_kill), (200, 5.0, 60.0, 0.0))

    def test_offeredTemplates(self):
        """instances names the templates this process offers; every template still loads."""
        config = makeConfig(instances=["emberforge"], max_instances=3, test_pause_kill=2)
        self.assertEqual(config.offered, ("emberforge",))
        self.assertEqual(set(config.templates), {"deadmines", "emberforge", "arena"})
        self.assertEqual((config.max_instances, config.test_pause_kill), (3, 2.0))

    def test_badValues(self):
        """Unknown templates and out-of-range instance keys are all reported together."""
        with self.assertRaises(ValueError) as e:
            makeConfig(instances=["atlantis"], max_instances=0, instance_timeout=0, leave_party_grace=-1,
                       test_pause_kill=-1)
        message = str(e.exception)
        self.assertIn("world.instances: unknown template 'atlantis' (known: arena, deadmines, emberforge)", message)
        self.assertIn("world.max_instances: must be greater than 0", message)
        self.assertIn("world.instance_timeout: must be greater than 0", message)
        self.assertIn("world.leave_party_grace: must be 0 or more", message)
        self.assertIn("world.test_pause_kill: must be 0 or more", message)

    def test_templateProblemsWithTheRest(self):
        """
        A template problem is reported under instances_file, after the file's
        path, together with zone and game data problems (templates are then
        checked as far as those loaded).
        """
        npcs = self.mktemp()
        with open(npcs, "w") as f:
            f.write('[npcs.rat]\nname = "Rat"\nlevel = 0\nhealth = 10\ndamage = [1, 2]\nattack_speed = 2.0\n')
        instances = self.mktemp()
        with open(instances, "w") as f:
            f.write('[instances.crypt]\nname = "The Crypt"\nkind = "dungeon"\nparty_size = 50\n')
        with self.assertRaises(ValueError) as e:
            makeConfig(npcs_file=npcs, instances_file=instances, start_zone="moon", instances=["crypt"])
        message = str(e.exception)
        self.assertIn(f"world.npcs_file: {npcs}: npcs.rat.level: must be 1..60", message)
        self.assertIn("world.start_zone", message)
        self.assertIn(f"world.instances_file: {instances}: instances.crypt.party_size: must be 1..40", message)
        self.assertIn(f"world.instances_file: {instances}: instances.crypt.layout: required", message)
        # The templates did not load: naming one is not a problem of its own.
        self.assertNotIn("world.instances:", message)

    def test_missingFile(self):
        """An instances file that cannot be read is a problem of instances_file."""
        with self.assertRaises(ValueError) as e:
            makeConfig(instances_file="nope/instances.toml")
        self.assertIn("world.instances_file: nope/instances.toml: cannot read", str(e.exception))

    def test_noInstances(self):
        """instances_file = "" loads no templates (for zones and game data of one's own); naming one is then a problem."""
        config = makeConfig(instances_file="")
        self.assertEqual((config.templates, config.offered), ({}, ()))
        with self.assertRaises(ValueError) as e:
            makeConfig(instances_file="", instances=["deadmines"])
        self.assertIn('world.instances: no templates: instances_file is ""', str(e.exception))
