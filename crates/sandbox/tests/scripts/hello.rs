fn main() {
    let total: u32 = (1..=10).map(|i| i * i).sum();
    println!("hello from rust {total}");
}
