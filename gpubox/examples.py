"""The examples each `python runner.py COMMAND --help` ends with (tests/test_targets_and_cli.py
parses every one to its command)."""

EXAMPLES = {
    "provision": "examples:\n  python runner.py provision                       # a g4dn.xlarge on EC2, SSH from your address only\n"
                 "  python runner.py provision --instance-type g5.xlarge --region eu-west-1 --spot\n"
                 "  python runner.py provision --dry-run            # what it would create\n"
                 "  python runner.py provision --os ubuntu-24.04 --deadman-minutes 180 --allow-cidr 2001:db8::/64\n"
                 "  python runner.py provision --data s3://team-data/churn --data s3://team-scratch/alice:rw\n"
                 "  python runner.py provision --name alice --from-snapshot latest   # back from what destroy kept\n"
                 "  python runner.py provision --local\n"
                 "  python runner.py provision --image latest         # from your newest baked image (image build)\n"
                 "  python runner.py provision --local --image dev\n"
                 "  python runner.py provision --host 203.0.113.10 --user ubuntu --key ~/.ssh/id_ed25519 --name alice",
    "status": "examples:\n  python runner.py status                          # yours, in every region you used\n"
              "  python runner.py status --region eu-west-1\n  python runner.py status --all                    # everyone's (IT)\n"
              "  python runner.py status --local --json           # local containers and SSH hosts only, for a script",
    "stop": "examples:\n  python runner.py stop                            # your only workstation\n  python runner.py stop --name alice\n  python runner.py stop --name bob --any-owner     # IT",
    "start": "examples:\n  python runner.py start --name alice",
    "hold": "examples:\n  python runner.py hold --name alice --hours 12   # a long training run\n  python runner.py hold --name alice",
    "release": "examples:\n  python runner.py release --name alice",
    "doctor": "examples:\n  python runner.py doctor\n  python runner.py doctor --instance-type g5.xlarge --region eu-west-1",
    "configure": "examples:\n  python runner.py configure --local\n  python runner.py configure --local --tags base --check",
    "ssh": "examples:\n  python runner.py ssh\n  python runner.py ssh --name alice -- nvidia-smi",
    "tunnel": "examples:\n  python runner.py tunnel\n  python runner.py tunnel --name alice --local-port 8888",
    "notebook": "examples:\n  python runner.py notebook\n  python runner.py notebook --name alice",
    "destroy": "examples:\n  python runner.py destroy --name alice --dry-run\n  python runner.py destroy --name alice\n"
               "  python runner.py destroy --name alice --no-snapshot   # no snapshot: the disk is deleted for good\n"
               "  python runner.py destroy --local --name demo --yes",
    "snapshots": "examples:\n  python runner.py snapshots list\n  python runner.py snapshots prune --keep 2 --dry-run\n"
                 "  python runner.py snapshots prune --keep 1 --name alice --yes",
    "cleanup": "examples:\n  python runner.py cleanup --dry-run                 # yours, stopped longer than autostop_stopped_days\n"
               "  python runner.py cleanup --any-owner --days 30 --yes  # IT: everyone's",
    "plan": "examples:\n  python runner.py plan                                # gpubox-plan-NAME.html in this directory\n"
            "  python runner.py plan --instance-type g5.xlarge --spot --hours-per-day 6 --output plan.html\n"
            "  python runner.py plan --inventory /path/to/inventory --format md --output plan.md",
    "image": "examples:\n  python runner.py image build                     # an AMI from site.yml, for fast EC2 workstations\n"
             "  python runner.py image build --name team --instance-type g5.xlarge --region eu-west-1\n"
             "  python runner.py image build --local --name dev   # a local podman image\n"
             "  python runner.py image list\n  python runner.py image prune --keep 3 --dry-run\n  python runner.py image prune --keep 3 --yes",
    "config": "examples:\n  python runner.py config show                     # each setting and where it comes from\n"
              "  python runner.py config show --region eu-west-1 --allow-cidr 198.51.100.0/24 --allow-cidr 203.0.113.0/24",
    "completion": "examples:\n  python runner.py completion bash    # in ~/.bashrc: source <(python runner.py completion bash)",
    "cost": "examples:\n  python runner.py cost                            # yours, this month so far\n"
            "  python runner.py cost --month 2026-11 --json\n  python runner.py cost --all                      # every owner (IT)",
    "budget": "examples:\n  python runner.py budget raise --owner AIDAEXAMPLE --to 500 --reason 'paper deadline'\n"
              "  python runner.py budget enforce --dry-run        # IT's budget job, saying only what it would stop",
    "env": ("examples:\n  python runner.py env create myenv -r requirements.txt --from pytorch\n"
           "  python runner.py env list                   # yours: ~/.local/share/gpubox/envs/NAME, kernel 'Python 3 (NAME)'\n"
           "  python runner.py env remove myenv"),
    "sync": ("examples:\n  python runner.py sync                      # this folder to ~/work/<its name>\n"
            "  python runner.py sync ~/code/model --pull   # results back from ~/work/model\n"
            "  python runner.py sync --delete              # also delete there what is gone here (never without it)"),
    "autostop": "examples:\n  python runner.py autostop 30                     # power off after 30 idle minutes\n"
                "  python runner.py autostop off --name alice       # never (if IT allows)\n"
                "  python runner.py autostop status                 # the limit in force, and whose",
    "report": "examples:\n  python runner.py report --name alice --output alice.html\n"
              "  python runner.py report --format md",
}
