local total = 0
for i = 1, 10 do total = total + i * i end
print("hello from lua " .. total)
