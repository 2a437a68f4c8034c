"""What each `runner.py` verb does, without argparse: one function per verb (or per step where
the CLI asks the user in between), taking plain values or a small options dataclass and returning
what the CLI prints. Long runs write their progress to the `out` stream they are given.

  provision  configure a local container or an SSH host; plan and provision an EC2 instance
  lifecycle  status, stop, start and destroy
  session    ssh, tunnel (and notebook), hold and release: what needs the workstation's SSH entry
  document   plan and report: the page for a manager and IT, before launch and after

Each family's command line sits beside it in <family>_cli.py: `add_parser(subparsers, flags)`
builds its verbs' parsers from the shared option groups (gpubox/flags.py) and `cmd_<verb>`
prints what the work returned. confirm.py is the one list -> dry run -> confirm -> act path of
every verb that deletes.
"""
