total=0
for i in $(seq 1 10); do total=$((total + i * i)); done
echo "hello from bash $total"
