<?php
$total = array_sum(array_map(fn($i) => $i * $i, range(1, 10)));
echo "hello from php $total\n";
