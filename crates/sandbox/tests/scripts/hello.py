import sys
print(f"hello from python {sum(i * i for i in range(1, 11))}")
print(sys.version_info[0], file=sys.stderr)
