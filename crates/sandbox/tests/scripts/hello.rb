total = (1..10).sum { |i| i * i }
puts "hello from ruby #{total}"
