use strict;
use warnings;
my $total = 0;
$total += $_ * $_ for 1 .. 10;
print "hello from perl $total\n";
